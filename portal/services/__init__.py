"""Business logic. No HTTP here: views parse requests, call these, and render."""
