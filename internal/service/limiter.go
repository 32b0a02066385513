package service

import "github.com/outreach-connector/outreach-connector/outreach"

// RateLimiter returns the rate limiter of an Outreach user at quota share
// 1: the one runs at that share use, and the one the proxy shares with
// them, so that both spend one budget.
func (s *Service) RateLimiter(user string) *outreach.RateLimiter { return s.limiter(user, 1) }
