package commvault

import (
	"testing"
)

// Realistic bodies from shared/api/commvault.md, and a few hostile ones.
var (
	loginSeeds = []string{
		`{"token": "QSDK 3a1f09bc", "userName": "svc-rotator", "aliasName": "1", "userGUID": "A1B2", "loginAttempts": 0, "remainingLockTime": 0, "smtpAddress": "a@b.c", "providerType": 1, "ccn": 0, "capability": 0, "forcePasswordChange": false, "isAccountLocked": false, "ownerOrganization": {"providerId": 0, "GUID": "x", "providerDomainName": "y"}, "errList": []}`,
		`{"data": {"authToken": "3a1f09bc"}}`,
		`{"errList": [{"errLogMessage": "Invalid Username or Password", "errorCode": 1116}], "loginAttempts": 1}`,
		`{"errorMessage":"Access denied","errorCode":5}`,
		`{"isAccountLocked": true, "remainingLockTime": 300, "token": ""}`,
		`{"token": "QSDK a\r\nX-Evil: 1"}`,
		`{"token": 5}`, `null`, ``, `[`,
	}
	listSeeds = []string{
		`{"tokens": [{"accessTokenId": 9, "userId": 5, "tokenName": "scim-prod", "createdTime": 1767225600, "tokenType": "MS_SCIM", "renewableUntilTimestamp": 0, "lastUsedTime": 1769900000, "tokenExpiryTimestamp": 1798761600, "apiEndpoints": []}], "error": {"errorMessage": "", "errorCode": 0}}`,
		`{"tokens": [{"accessTokenId": "10", "tokenType": 2, "tokenExpiryTimestamp": 1.7e9}]}`,
		`{"tokens": null, "error": {"errorMessage": "", "errorCode": 0}}`,
		`{"error": {"errorMessage": "Access denied", "errorCode": 5}}`,
		`{"error": "something broke"}`,
		`{"tokens": [{"accessTokenId": 0}]}`,
		`{"tokens": [{"accessTokenId": 9, "tokenType": {"x": 1}}]}`,
		`{"tokens": [{"accessTokenId": 1e400}]}`,
		`{"tokens": [{"accessTokenId": 9, "tokenType": 77}]}`,
	}
	createSeeds = []string{
		`{"error": {"errorMessage": "", "errorCode": 0}, "tokenInfo": {"error": {"errorMessage": "", "errorCode": 0}, "accessTokenId": 10, "tokenName": "tokend-x-g1", "userId": 123, "tokenExpiryTimestamp": 1767227400, "accessToken": "abc", "refreshToken": "def", "refreshTokenExpiryTimestamp": 1768435200, "renewableUntilTimestamp": 1775000000}}`,
		`{"error": {"errorMessage": "Token name already present", "errorCode": 1}, "tokenInfo": {}}`,
		`{"error": {"errorCode": 0}, "tokenInfo": {"error": {"errorMessage": "bad", "errorCode": "7"}}}`,
		`{"error": {"errorCode": 0}}`,
		`{"tokenInfo": {"accessTokenId": -1, "accessToken": "x"}}`,
	}
	renewSeeds = []string{
		`{"error": {"errorMessage": "", "errorCode": 0}, "accessTokenId": 9, "tokenName": "Testing", "userId": 5, "tokenType": 2, "accessToken": "3474", "refreshToken": "123B", "tokenExpiryTimestamp": 1770926484, "refreshTokenExpiryTimestamp": 1772134284, "renewableUntilTimestamp": 1778644800}`,
		`{"errorMessage": "Token cannot be renewed", "errorCode": 400}`,
		`{"error": {"errorMessage": "", "errorCode": 0}, "accessToken": "x"}`,
		`{"accessToken": "a", "refreshToken": "b", "tokenType": "CUSTOM", "errorCode": "0"}`,
	}
	deleteSeeds = []string{``, `{"errorMessage": "", "errorCode": 0}`, `{"errorMessage": "not found", "errorCode": 2}`, `{`}
)

func fuzz(f *testing.F, seeds []string, decode func([]byte)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { decode(b) })
}

func FuzzDecodeLogin(f *testing.F) {
	fuzz(f, loginSeeds, func(b []byte) {
		tok, refusal, err := decodeLogin(b)
		if err == nil && !refusal.failed() && (len(tok) < 6 || tok[:5] != "QSDK ") {
			panic("accepted login without a QSDK token")
		}
	})
}

func FuzzDecodeList(f *testing.F) {
	fuzz(f, listSeeds, func(b []byte) {
		recs, _, err := decodeList(b)
		for _, r := range recs {
			if err == nil && r.AccessTokenID <= 0 {
				panic("listed token without an id accepted")
			}
		}
	})
}

func FuzzDecodeCreate(f *testing.F) {
	fuzz(f, createSeeds, func(b []byte) {
		r, ve, err := decodeCreate(b)
		if err == nil && !ve.failed() && (r.AccessToken == "" || r.AccessTokenID <= 0) {
			panic("create answer accepted without a token")
		}
	})
}

func FuzzDecodeRenew(f *testing.F) {
	fuzz(f, renewSeeds, func(b []byte) {
		r, ve, err := decodeRenew(b)
		if err == nil && !ve.failed() && (r.AccessToken == "" || r.RefreshToken == "") {
			panic("renew answer accepted without a pair")
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	all := append(append(append(append([]string{}, listSeeds...), createSeeds...), renewSeeds...), deleteSeeds...)
	fuzz(f, all, func(b []byte) {
		_ = decodeError(b)
		_, _ = decodeDelete(b)
		_, _ = decodeWhoAmI(b)
		_ = scrub(string(b), "secret")
	})
}

func TestDecoders(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		tests := []struct {
			body, want string
			refused    bool
		}{
			{loginSeeds[0], "QSDK 3a1f09bc", false},
			{loginSeeds[1], "QSDK 3a1f09bc", false}, // SaaS shape, prefix added
			{loginSeeds[2], "", true},
			{loginSeeds[3], "", true},
			{loginSeeds[4], "", true},
		}
		for _, tt := range tests {
			tok, refusal, err := decodeLogin([]byte(tt.body))
			if err != nil || tok != tt.want || refusal.failed() != tt.refused {
				t.Errorf("decodeLogin(%s) = %q, %+v, %v; want %q, refused %v", tt.body, tok, refusal, err, tt.want, tt.refused)
			}
		}
		for _, b := range loginSeeds[5:] {
			if _, _, err := decodeLogin([]byte(b)); err == nil {
				t.Errorf("decodeLogin(%q) error = nil, want malformed", b)
			}
		}
	})
	t.Run("list", func(t *testing.T) {
		recs, ve, err := decodeList([]byte(listSeeds[0]))
		if err != nil || ve.failed() || len(recs) != 1 || recs[0].AccessTokenID != 9 || *recs[0].TokenType != typeMSSCIM ||
			recs[0].TokenExpiry != 1798761600 || recs[0].CreatedTime != 1767225600 {
			t.Errorf("decodeList(doc example) = %+v, %+v, %v", recs, ve, err)
		}
		recs, _, err = decodeList([]byte(listSeeds[1]))
		if err != nil || recs[0].AccessTokenID != 10 || *recs[0].TokenType != typeALL || recs[0].TokenExpiry != 1700000000 {
			t.Errorf("decodeList(numbers as strings, type as int) = %+v, %v", recs, err)
		}
		if recs, _, err := decodeList([]byte(listSeeds[2])); err != nil || len(recs) != 0 {
			t.Errorf("decodeList(null tokens) = %v, %v, want empty", recs, err)
		}
		if _, ve, err := decodeList([]byte(listSeeds[3])); err != nil || ve.Code != 5 {
			t.Errorf("decodeList(error) = %+v, %v, want code 5", ve, err)
		}
		if _, ve, err := decodeList([]byte(listSeeds[4])); err != nil || !ve.failed() {
			t.Errorf("decodeList(string error) = %+v, %v, want a failure", ve, err)
		}
		for _, b := range []string{listSeeds[5], listSeeds[6], listSeeds[7], `{}`, `[]`} {
			if _, _, err := decodeList([]byte(b)); err == nil {
				t.Errorf("decodeList(%s) error = nil, want malformed", b)
			}
		}
		if recs, _, err := decodeList([]byte(listSeeds[8])); err != nil || *recs[0].TokenType != "77" {
			t.Errorf("decodeList(unknown type number) = %+v, %v, want type 77", recs, err)
		}
	})
	t.Run("create and renew", func(t *testing.T) {
		r, ve, err := decodeCreate([]byte(createSeeds[0]))
		if err != nil || ve.failed() || r.AccessTokenID != 10 || r.RefreshExpiry != 1768435200 || r.RenewableUntil != 1775000000 {
			t.Errorf("decodeCreate(doc example) = %+v, %+v, %v", r, ve, err)
		}
		if _, ve, _ := decodeCreate([]byte(createSeeds[2])); ve.Code != 7 || ve.Message != "bad" {
			t.Errorf("decodeCreate(tokenInfo.error) = %+v, want code 7", ve)
		}
		r, ve, err = decodeRenew([]byte(renewSeeds[0]))
		if err != nil || ve.failed() || r.AccessTokenID != 9 || r.TokenExpiry != 1770926484 || *r.TokenType != typeALL {
			t.Errorf("decodeRenew(doc example) = %+v, %+v, %v", r, ve, err)
		}
		if _, ve, _ := decodeRenew([]byte(renewSeeds[1])); ve.Code != 400 {
			t.Errorf("decodeRenew(flat error) = %+v, want code 400", ve)
		}
		if _, _, err := decodeRenew([]byte(renewSeeds[2])); err == nil {
			t.Errorf("decodeRenew(no refresh token) error = nil")
		}
	})
}
