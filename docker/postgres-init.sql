-- One PostgreSQL for the server path: Airflow's metadata database and MLflow's backend store.
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
