"""Development tools of the admin UI (an in-memory fake of the API)."""
