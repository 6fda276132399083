"""What the tests share and is not a test: database fixtures' machinery, row and storyboard
builders, builders of the files older code left behind, harnesses for processes that run at
once, and the data files (revisions of scenarios and of a newer release) some tests load."""
