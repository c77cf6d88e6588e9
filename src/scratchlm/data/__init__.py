"""Stage 2: text to training windows; where corpora come from."""
