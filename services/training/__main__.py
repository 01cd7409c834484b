from services.training.service import service

service.main()
