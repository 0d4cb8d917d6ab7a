"""A minimal Django project with django-rq, to run `manage.py rqworker --worker-class rediscron.CronWorker`."""
