from services.gateway.service import service

service.main()
