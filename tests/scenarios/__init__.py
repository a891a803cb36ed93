"""The scenario suite: record real requests, generate tests, run them in a throwaway project."""
