package teams

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Teams app manifest version written by Package.
const (
	manifestVersion = "1.17"
	manifestSchema  = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
)

// packageTime is the modification time of every entry of the package, so
// the same input always gives the same bytes.
var packageTime = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// PackageOptions describes the Teams app built by Package. Only AppID is
// required; the rest have defaults.
type PackageOptions struct {
	// AppID is the bot's Microsoft App ID (C2_TEAMS_APP_ID), a GUID. It is
	// the bot id and, unless ManifestID is set, the app id.
	AppID string
	// ManifestID is the Teams app id; default AppID.
	ManifestID string
	// Version is the app version ("1.0.0").
	Version string
	// ShortName (≤ 30 characters) and FullName (≤ 100) name the app.
	ShortName, FullName string
	// DeveloperName, WebsiteURL, PrivacyURL and TermsURL fill the
	// manifest's developer block (https URLs).
	DeveloperName, WebsiteURL, PrivacyURL, TermsURL string
	// AccentColor is the icon background, "#RRGGBB".
	AccentColor string
	// ValidDomains are extra domains the app may open.
	ValidDomains []string
}

// commandList is the bot's command menu: the verbs of DESIGN.md.
var commandList = []struct{ title, desc string }{
	{"diagnose", "Find what blocks legacy sign-ins: diagnose [tenant]"},
	{"fix", "Request a temporary fix: fix [tenant] [--for 8h] [--reason \"…\"]"},
	{"status", "Show open requests and active changes"},
	{"revert", "Revert an applied change now: revert <id>"},
	{"extend", "Ask to keep a change longer: extend <id> <duration>"},
	{"cancel", "Cancel a pending request: cancel <id>"},
	{"signins", "Summarise the tool's recent sign-ins: signins [--since 24h]"},
	{"audit", "Show the audit log"},
	{"help", "List the commands"},
}

var (
	guidRe  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	colorRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

func (o *PackageOptions) setDefaults() error {
	if o.ManifestID == "" {
		o.ManifestID = o.AppID
	}
	if !guidRe.MatchString(o.AppID) {
		return fmt.Errorf("teams package: app id %q is not a GUID (set C2_TEAMS_APP_ID)", o.AppID)
	}
	if !guidRe.MatchString(o.ManifestID) {
		return fmt.Errorf("teams package: manifest id %q is not a GUID", o.ManifestID)
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.Version, "1.0.0")
	def(&o.ShortName, "c2")
	def(&o.FullName, "c2bot: legacy-auth fixes with approval and automatic revert")
	def(&o.DeveloperName, "c2bot")
	def(&o.WebsiteURL, "https://github.com/c2bot/c2bot")
	def(&o.PrivacyURL, "https://github.com/c2bot/c2bot/blob/main/PRIVACY.md")
	def(&o.TermsURL, "https://github.com/c2bot/c2bot/blob/main/LICENSE")
	def(&o.AccentColor, "#3B5BDB")
	if !colorRe.MatchString(o.AccentColor) {
		return fmt.Errorf("teams package: accent colour %q is not #RRGGBB", o.AccentColor)
	}
	if len([]rune(o.ShortName)) > 30 || len([]rune(o.FullName)) > 100 {
		return fmt.Errorf("teams package: name too long (short ≤ 30, full ≤ 100 characters)")
	}
	for _, u := range []string{o.WebsiteURL, o.PrivacyURL, o.TermsURL} {
		if !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("teams package: developer url %q must be https", u)
		}
	}
	return nil
}

// manifest returns the manifest.json document.
func (o PackageOptions) manifest() map[string]any {
	cmds := make([]map[string]any, 0, len(commandList))
	for _, c := range commandList {
		cmds = append(cmds, map[string]any{"title": c.title, "description": c.desc})
	}
	scopes := []string{"personal", "team", "groupChat"}
	domains := append([]string{}, o.ValidDomains...)
	sort.Strings(domains)
	return map[string]any{
		"$schema":         manifestSchema,
		"manifestVersion": manifestVersion,
		"version":         o.Version,
		"id":              o.ManifestID,
		"developer": map[string]any{
			"name": o.DeveloperName, "websiteUrl": o.WebsiteURL,
			"privacyUrl": o.PrivacyURL, "termsOfUseUrl": o.TermsURL,
		},
		"name": map[string]any{"short": o.ShortName, "full": o.FullName},
		"description": map[string]any{
			"short": "Diagnose and temporarily fix Microsoft 365 legacy-auth blockers",
			"full": "c2 finds why a backup or migration tool's legacy sign-ins fail (security defaults, " +
				"SharePoint legacy auth, Conditional Access), asks an approver for a temporary change, applies it " +
				"for a bounded time and reverts it automatically, with every step posted in the conversation. " +
				"Type \"c2 diagnose\" or \"@c2 diagnose\".",
		},
		"icons":       map[string]any{"color": "color.png", "outline": "outline.png"},
		"accentColor": strings.ToUpper(o.AccentColor),
		"bots": []any{map[string]any{
			"botId":              o.AppID,
			"scopes":             scopes,
			"supportsFiles":      false,
			"isNotificationOnly": false,
			"commandLists":       []any{map[string]any{"scopes": scopes, "commands": cmds}},
		}},
		"permissions":  []string{"identity", "messageTeamMembers"},
		"validDomains": domains,
	}
}

// Package writes the Teams app package (a zip with manifest.json,
// color.png 192×192 and outline.png 32×32) for opts to w. The output is
// deterministic: the same options give the same bytes. It returns an error
// when the options are invalid (AppID not a GUID, a bad colour or URL) or w
// fails.
func Package(w io.Writer, opts PackageOptions) error {
	if err := opts.setDefaults(); err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(opts.manifest(), "", "  ")
	if err != nil {
		return fmt.Errorf("teams package: encode manifest: %w", err)
	}
	accent, _ := parseHexColor(opts.AccentColor)
	colorPNG, err := encodePNG(colorIcon(accent))
	if err != nil {
		return err
	}
	outlinePNG, err := encodePNG(outlineIcon())
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"color.png":     colorPNG,
		"manifest.json": append(manifest, '\n'),
		"outline.png":   outlinePNG,
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		hdr := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: packageTime}
		hdr.SetMode(0o644)
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return fmt.Errorf("teams package: %s: %w", n, err)
		}
		if _, err := fw.Write(files[n]); err != nil {
			return fmt.Errorf("teams package: %s: %w", n, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("teams package: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("teams package: write: %w", err)
	}
	return nil
}

func parseHexColor(s string) (color.NRGBA, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil {
		return color.NRGBA{}, err
	}
	return color.NRGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 0xff}, nil
}

func encodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("teams package: encode icon: %w", err)
	}
	return b.Bytes(), nil
}

// glyphs are 5×7 bitmaps of the letters of the logo.
var glyphs = map[rune][7]string{
	'c': {
		".###.",
		"#...#",
		"#....",
		"#....",
		"#....",
		"#...#",
		".###.",
	},
	'2': {
		".###.",
		"#...#",
		"....#",
		"...#.",
		"..#..",
		".#...",
		"#####",
	},
}

// drawText draws "c2" in white with pixels of size scale, its top-left
// corner at (x, y).
func drawText(img *image.NRGBA, x, y, scale int) {
	white := color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	for i, r := range "c2" {
		g := glyphs[r]
		ox := x + i*6*scale
		for row, line := range g {
			for col, ch := range line {
				if ch != '#' {
					continue
				}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < scale; dx++ {
						img.SetNRGBA(ox+col*scale+dx, y+row*scale+dy, white)
					}
				}
			}
		}
	}
}

// colorIcon is the 192×192 full-colour icon: "c2" in white on the accent
// colour.
func colorIcon(bg color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 192, 192))
	for y := 0; y < 192; y++ {
		for x := 0; x < 192; x++ {
			img.SetNRGBA(x, y, bg)
		}
	}
	// 11 columns × 7 rows of glyph pixels at scale 12: 132×84, centred.
	drawText(img, (192-11*12)/2, (192-7*12)/2, 12)
	return img
}

// outlineIcon is the 32×32 outline icon: white "c2" on transparency, as
// Teams requires.
func outlineIcon() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	// 11×7 at scale 2: 22×14, centred.
	drawText(img, (32-11*2)/2, (32-7*2)/2, 2)
	return img
}
