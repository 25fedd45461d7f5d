package tokens_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/tokens"
)

// The API signs a licence token when it grants a licence; a DRM licence
// server verifies it with the published key set.
func ExampleSigner() {
	// In production: tokens.ParseKeys(os.Getenv("LICENCE_SIGNING_KEYS")).
	seed := make([]byte, ed25519.SeedSize)
	key := tokens.Key{ID: "2026-11", Private: ed25519.NewKeyFromSeed(seed)}
	signer, err := tokens.NewSigner("https://licences.example", []tokens.Key{key})
	if err != nil {
		panic(err)
	}

	issued := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	licence := licensing.LicenceStatus{
		ID: "lic-1", Title: "title-9", Studio: "studio-3", Device: "dev-7",
		Status: licensing.StatusActive, IssuedAt: issued,
		ExpiresAt: issued.Add(48 * time.Hour), PlayableUntil: issued.Add(48 * time.Hour),
	}
	token, err := signer.Sign(licence, "member-42", "v3")
	if err != nil {
		panic(err)
	}

	// The DRM licence server's side: GET /.well-known/jwks.json, then verify.
	jwks := signer.JWKS()
	claims, err := tokens.Verify(token, jwks, "https://licences.example", issued.Add(time.Hour))
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Member, claims.Licence.LicenceID, claims.Licence.TitleID, claims.Licence.DeviceID)
	fmt.Println("playable until", claims.ExpiresAt.Format(time.RFC3339), "under policy", claims.Licence.PolicyVersion)

	_, err = tokens.Verify(token, jwks, "https://licences.example", issued.Add(72*time.Hour))
	fmt.Println("three days on, expired:", errors.Is(err, tokens.ErrExpired))
	// Output:
	// member-42 lic-1 title-9 dev-7
	// playable until 2026-11-04T10:00:00Z under policy v3
	// three days on, expired: true
}
