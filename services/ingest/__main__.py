from services.ingest.service import service

service.main()
