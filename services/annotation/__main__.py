from services.annotation.service import service

service.main()
