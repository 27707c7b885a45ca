// Package cluster performs the Kubernetes side of an air-gapped PaletteAI
// ingest, the steps the air-gap guide otherwise asks an operator to type:
//
//   - bundle import: the Profile Bundle's objects applied to the hub project
//     namespace with server-side apply (field manager "ferry"), for the kinds
//     the hub serves according to API discovery, with chart references
//     pointed at the registry ferry pushed to and pack registry UIDs remapped;
//   - Project admission: the workload namespace added to the Project's
//     deployment allow-list, only when absent, with optimistic concurrency;
//   - mural-variables: the three Zot variables upserted by name into the
//     project VariableSet, keeping every other variable and unknown field;
//   - the Zot CA on the spoke: after a bounded wait for the CA Secret that
//     PaletteAI puts into mural-system, an Opaque Secret zot-ca holding only
//     ca.crt in the workload namespace.
//
// Every step is idempotent and reports whether it changed anything; a dry run
// asks the API server to validate each write without persisting it and
// reports the diff. [Validate] checks the end state. The package never
// prints and never reads the environment: kubeconfig paths come in through
// [KubeconfigSource], progress goes out through the callbacks of [Options].
package cluster
