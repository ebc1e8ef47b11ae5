"""Projects, repositories and their mirrors, timelines and git-upload remotes."""
