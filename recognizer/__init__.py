"""Code shared by train_recognizer.py and the scripts: data lists, sampling,
transforms, model construction, checkpoints, and user-facing errors."""
