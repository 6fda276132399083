"""vidpipe's data layer: storyboard schemas, database models and versioned migrations."""
