package config

import (
	"fmt"
	"net"
	"strings"
)

// ParseTrustedProxy reads one trusted_proxies entry: a CIDR range
// (10.0.0.0/8, 2001:db8::/32) or a single IP address, which is read as
// the range holding only it.
func ParseTrustedProxy(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	if ip := net.ParseIP(s); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}, nil
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}, nil
	}
	return nil, fmt.Errorf("%q is not a CIDR range (10.0.0.0/8, 2001:db8::/32) or an IP address", s)
}

// TrustedProxyRanges returns the trusted_proxies of a validated
// configuration.
func (c *Config) TrustedProxyRanges() []*net.IPNet {
	out := make([]*net.IPNet, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if n, err := ParseTrustedProxy(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}
