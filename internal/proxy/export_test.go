package proxy

// Fingerprint is fingerprint, for tests.
var Fingerprint = fingerprint
