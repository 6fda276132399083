"""The README and the docs site: their examples run, their claims (versions, diagrams, cited tests,
documented errors) match the code."""
