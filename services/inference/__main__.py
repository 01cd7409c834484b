from services.inference.service import service

service.main()
