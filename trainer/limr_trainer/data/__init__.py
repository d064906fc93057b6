"""Training data: the dataset's rows, the built-in synthetic task, the chat prompt, the reward records."""
