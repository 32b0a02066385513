package webhooks

// Seal seals a secret as Subscribe does, for tests that make
// subscriptions by hand.
var Seal = seal
