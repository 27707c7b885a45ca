package manifest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConvertToOCI(t *testing.T) {
	layer := "sha256:" + strings.Repeat("1", 64)
	cfg := "sha256:" + strings.Repeat("2", 64)
	docker := `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `",` +
		`"config":{"mediaType":"` + MediaTypeDockerConfig + `","size":10,"digest":"` + cfg + `"},` +
		`"layers":[{"mediaType":"` + MediaTypeDockerLayer + `","size":20,"digest":"` + layer + `"}],"x-extra":{"keep":true}}`
	mt, data, err := ConvertToOCI(MediaTypeDockerManifest, []byte(docker), nil)
	if err != nil {
		t.Fatal(err)
	}
	if mt != MediaTypeOCIManifest {
		t.Fatalf("media type %s", mt)
	}
	children, err := Children(mt, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 2 || children[0].Digest != cfg || children[0].MediaType != MediaTypeOCIConfig ||
		children[1].Digest != layer || children[1].MediaType != MediaTypeOCILayerGzip || children[1].Size != 20 {
		t.Fatalf("children after conversion: %+v", children)
	}
	if !strings.Contains(string(data), `"x-extra":{"keep":true}`) {
		t.Errorf("unknown field dropped: %s", data)
	}

	child := "sha256:" + strings.Repeat("3", 64)
	newChild := Descriptor{MediaType: MediaTypeOCIManifest, Digest: "sha256:" + strings.Repeat("4", 64), Size: 99}
	list := `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerList + `","manifests":[{"mediaType":"` + MediaTypeDockerManifest +
		`","size":5,"digest":"` + child + `","platform":{"architecture":"arm64","os":"linux"}}]}`
	mt, data, err = ConvertToOCI(MediaTypeDockerList, []byte(list), map[string]Descriptor{child: newChild})
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		MediaType string
		Manifests []struct {
			Descriptor
			Platform map[string]string
		}
	}
	json.Unmarshal(data, &idx)
	if mt != MediaTypeOCIIndex || idx.MediaType != MediaTypeOCIIndex || idx.Manifests[0].Descriptor != newChild || idx.Manifests[0].Platform["architecture"] != "arm64" {
		t.Fatalf("index after conversion: %s", data)
	}
	// OCI content passes through untouched.
	if mt, out, _ := ConvertToOCI(MediaTypeOCIManifest, data, nil); mt != MediaTypeOCIManifest || string(out) != string(data) {
		t.Error("OCI manifest was changed")
	}
}
