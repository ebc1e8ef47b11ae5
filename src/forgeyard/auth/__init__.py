"""Who is calling and what they may do: principals, the FastAPI dependencies, the role policy."""
