package archive

import (
	"context"
	"testing"
	"time"
)

// TestCountVolumesIsWhatWriteWrites counts, for several volume sizes over
// an archive with blobs of many sizes, one larger than a volume, the
// volumes before writing, with another creation time and no signature, as
// a plan does; then writes and compares.
func TestCountVolumesIsWhatWriteWrites(t *testing.T) {
	f := newFixture(t, 150<<10)
	for i, size := range []int{1200 << 10, 70 << 10, 260 << 10, 3 << 10, 500 << 10, 90 << 10} {
		l := f.add(randomBytes(t, size), "application/vnd.oci.image.layer.v1.tar+gzip")
		f.artifact("img"+string(rune('a'+i)), f.image(t, "img"+string(rune('a'+i)), l))
	}
	for _, volumeSize := range []int64{300 << 10, 400 << 10, 700 << 10, 1 << 20, 5 << 20} {
		planned := *f.bom
		planned.Created = f.bom.Created.Add(-time.Hour + 123456789)
		want, err := CountVolumes(&planned, volumeSize)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Write(context.Background(), f.bom, f.src, WriteOptions{Dir: t.TempDir(), Name: "test", VolumeSize: volumeSize, Signer: testSigner{"k"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Volumes) != want {
			t.Errorf("volume size %d: counted %d volumes, wrote %d", volumeSize, want, len(res.Volumes))
		}
		if volumeSize == 400<<10 && want < 4 {
			t.Errorf("volume size %d: %d volumes, the test wants several", volumeSize, want)
		}
		for _, v := range res.Volumes {
			if v.Size > volumeSize {
				t.Errorf("volume %d is %d bytes, over %d", v.Number, v.Size, volumeSize)
			}
		}
	}
}
