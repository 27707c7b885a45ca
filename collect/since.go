package collect

import (
	"fmt"

	"github.com/ferrytool/ferry/manifest"
)

// applyDelta leaves out of the plan's archive what the receipts say the
// destination holds. The bill of materials keeps every artifact with its
// whole closure; what stays out is listed as expected at the destination,
// with the receipt that lists it, so the air-gapped side can check before
// it pushes. The receipts must be verified already: nothing here checks a
// signature.
func (p *Plan) applyDelta(receipts []*manifest.Receipt) error {
	dp, err := manifest.PlanDelta(p.BOM, receipts...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	refs := make([]manifest.ReceiptRef, len(receipts))
	for i, r := range receipts {
		if refs[i], err = r.Ref(); err != nil {
			return err
		}
	}
	if err := p.BOM.ApplyDelta(dp, refs); err != nil {
		return err
	}
	// The id derives from the content, which is now the delta's.
	id, err := manifest.ContentArchiveID(p.BOM)
	if err != nil {
		return err
	}
	p.BOM.ArchiveID = id
	p.Delta = dp
	return nil
}
