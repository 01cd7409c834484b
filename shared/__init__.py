"""The library every service uses: config, bus, db, storage, metrics, logging, errors."""
