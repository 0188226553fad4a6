"""One APIRouter per entity; each is registered in backend/app/main.py."""
