package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
)

var (
	errJWTFormat = errors.New("failed to parse JWT from URL")
	errJWTNoID   = errors.New("InfraEnv ID not found in token")
	errJWTBadID  = errors.New("InfraEnv ID in token is not a valid ID")
)

// imageIDFromJWT extracts the InfraEnv id from an (unverified) JWT: the
// payload is the second-to-last dot-separated part, "sub" wins over
// "infra_env_id". assisted-service verifies the token; this only routes.
// Unlike the original, base64url payloads (and padding) are accepted too.
func imageIDFromJWT(token string) (string, error) {
	last := bytes.LastIndexByte([]byte(token), '.')
	if last <= 0 || last == len(token)-1 {
		return "", errJWTFormat
	}
	prev := bytes.LastIndexByte([]byte(token[:last]), '.')
	if prev <= 0 || prev+1 == last {
		return "", errJWTFormat
	}
	payload := token[prev+1 : last]
	raw, err := decodeSegment(payload)
	if err != nil {
		return "", err
	}
	var claims struct {
		Sub        string `json:"sub"`
		InfraEnvID string `json:"infra_env_id"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", errors.New("failed to parse JWT payload: " + err.Error())
	}
	if claims.Sub != "" {
		return claims.Sub, nil
	}
	if claims.InfraEnvID != "" {
		return claims.InfraEnvID, nil
	}
	return "", errJWTNoID
}

func decodeSegment(s string) ([]byte, error) {
	s = string(bytes.TrimRight([]byte(s), "="))
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("failed to decode JWT payload: " + err.Error())
	}
	return b, nil
}
