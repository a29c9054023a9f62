"""`convnet serve`: a local web page and JSON API to look inside a trained model."""
