"""What is stored: the storyboard schemas, the models, the integrity the database enforces, and
the storyboard store's round trips, batches, concurrent saves and scaling."""
