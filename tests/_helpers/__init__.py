"""What several test files share: sentinels and the searches for them, process
watching, the demo policy with overrides, the digest attack. One home, so no test
module imports another's private helpers."""
