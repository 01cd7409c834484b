from services.catalog.service import service

service.main()
