-- The "replicas" profile (docker-compose.yml): one database per participant, beside the saga
-- log's, owned by the same user. Run by the postgres image once, when its data volume is new.
CREATE DATABASE sagas_order;
CREATE DATABASE sagas_payment;
CREATE DATABASE sagas_inventory;
