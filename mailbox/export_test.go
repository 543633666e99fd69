package mailbox

// NormaliseForTest is normalise and the address Open dials, for the
// external tests.
func NormaliseForTest(cfg Config) (string, error) {
	cfg, err := normalise(cfg)
	return cfg.addr(), err
}
