package teams

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"sort"
	"testing"
)

func buildPackage(t *testing.T, opts PackageOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Package(&b, opts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPackageDeterministic(t *testing.T) {
	opts := PackageOptions{AppID: testAppID, ValidDomains: []string{"c2.example.com", "a.example.com"}}
	a, b := buildPackage(t, opts), buildPackage(t, opts)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same options differ")
	}
	other := buildPackage(t, PackageOptions{AppID: testAppID, Version: "1.0.1"})
	if bytes.Equal(a, other) {
		t.Fatal("a different version gave the same bytes")
	}
}

func TestPackageContents(t *testing.T) {
	data := buildPackage(t, PackageOptions{AppID: testAppID, AccentColor: "#112233", ValidDomains: []string{"z.example.com", "a.example.com"}})
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Modified.Year() != 2024 {
			t.Errorf("%s: timestamp %v is not the fixed one", f.Name, f.Modified)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if !sort.StringsAreSorted(names) || len(names) != 3 {
		t.Fatalf("entries = %v, want the three files in order", names)
	}

	var m struct {
		Schema          string `json:"$schema"`
		ManifestVersion string `json:"manifestVersion"`
		Version         string `json:"version"`
		ID              string `json:"id"`
		Developer       struct {
			Name, WebsiteURL, PrivacyURL, TermsOfUseURL string
		} `json:"developer"`
		Name        struct{ Short, Full string }    `json:"name"`
		Description struct{ Short, Full string }    `json:"description"`
		Icons       struct{ Color, Outline string } `json:"icons"`
		AccentColor string                          `json:"accentColor"`
		Bots        []struct {
			BotID        string   `json:"botId"`
			Scopes       []string `json:"scopes"`
			CommandLists []struct {
				Scopes   []string `json:"scopes"`
				Commands []struct{ Title, Description string }
			} `json:"commandLists"`
		} `json:"bots"`
		ValidDomains []string `json:"validDomains"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if m.ManifestVersion != "1.17" || m.Schema == "" || m.Version != "1.0.0" || m.ID != testAppID {
		t.Errorf("manifest header = %+v", m)
	}
	if m.Developer.Name == "" || m.Developer.WebsiteURL == "" || m.Developer.PrivacyURL == "" || m.Developer.TermsOfUseURL == "" {
		t.Errorf("developer = %+v", m.Developer)
	}
	if m.Name.Short == "" || m.Name.Full == "" || m.Description.Short == "" || m.Description.Full == "" {
		t.Errorf("name/description missing: %+v %+v", m.Name, m.Description)
	}
	if len(m.Description.Short) > 80 || len(m.Name.Short) > 30 {
		t.Errorf("short texts too long")
	}
	if m.Icons.Color != "color.png" || m.Icons.Outline != "outline.png" || m.AccentColor != "#112233" {
		t.Errorf("icons/accent = %+v %s", m.Icons, m.AccentColor)
	}
	if len(m.Bots) != 1 || m.Bots[0].BotID != testAppID {
		t.Fatalf("bots = %+v", m.Bots)
	}
	wantScopes := []string{"personal", "team", "groupChat"}
	if mustJSON(t, m.Bots[0].Scopes) != mustJSON(t, wantScopes) {
		t.Errorf("scopes = %v", m.Bots[0].Scopes)
	}
	var titles []string
	for _, c := range m.Bots[0].CommandLists[0].Commands {
		titles = append(titles, c.Title)
		if c.Description == "" || len(c.Title) > 32 || len(c.Description) > 128 {
			t.Errorf("command %+v breaks the manifest limits", c)
		}
	}
	want := []string{"diagnose", "fix", "status", "revert", "extend", "cancel", "signins", "audit", "help"}
	if mustJSON(t, titles) != mustJSON(t, want) {
		t.Errorf("commands = %v, want %v", titles, want)
	}
	if mustJSON(t, m.ValidDomains) != `["a.example.com","z.example.com"]` {
		t.Errorf("validDomains = %v", m.ValidDomains)
	}

	colorImg, err := png.Decode(bytes.NewReader(files["color.png"]))
	if err != nil {
		t.Fatal(err)
	}
	if b := colorImg.Bounds(); b.Dx() != 192 || b.Dy() != 192 {
		t.Errorf("color.png is %v, want 192x192", b)
	}
	if r, g, bl, a := colorImg.At(0, 0).RGBA(); r>>8 != 0x11 || g>>8 != 0x22 || bl>>8 != 0x33 || a>>8 != 0xff {
		t.Errorf("color.png background = %v, want the accent colour", colorImg.At(0, 0))
	}
	outline, err := png.Decode(bytes.NewReader(files["outline.png"]))
	if err != nil {
		t.Fatal(err)
	}
	if b := outline.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Errorf("outline.png is %v, want 32x32", b)
	}
	white, transparent := 0, 0
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			r, g, b, a := outline.At(x, y).RGBA()
			switch {
			case a == 0:
				transparent++
			case r == 0xffff && g == 0xffff && b == 0xffff && a == 0xffff:
				white++
			default:
				t.Fatalf("outline.png pixel (%d,%d) is neither white nor transparent", x, y)
			}
		}
	}
	if white == 0 || transparent == 0 {
		t.Errorf("outline.png has %d white and %d transparent pixels", white, transparent)
	}
}

func TestPackageRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]PackageOptions{
		"no app id":    {},
		"not a guid":   {AppID: "my-bot"},
		"bad colour":   {AppID: testAppID, AccentColor: "blue"},
		"http website": {AppID: testAppID, WebsiteURL: "http://example.com"},
		"long name":    {AppID: testAppID, ShortName: "a name far longer than thirty characters"},
		"bad manifest": {AppID: testAppID, ManifestID: "x"},
	} {
		if err := Package(io.Discard, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
