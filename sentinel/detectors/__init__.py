"""Pure detection and threshold tuning: history in, thresholds and verdicts out."""
