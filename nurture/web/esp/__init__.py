"""ESP webhook formats, one module each (`nurture.web.providers` lists them)."""
