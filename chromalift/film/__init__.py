"""Films: frames in and out, cuts, steady colour, a resumable work folder."""
