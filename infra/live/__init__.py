"""Operations against a live system: promotion, status, preflight, stack updates."""
