"""Programs over the library: the local web page and the user study."""
