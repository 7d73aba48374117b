# Lead pipeline. `make run` and `make test` set everything up on a fresh Debian machine (as root).
.PHONY: build up down run test bench bench-scale chaos cluster-up cluster-down status clean

CONFIG ?= debug

build:
	scripts/servers.sh install
	swift build -c $(CONFIG)

up:
	CONFIG=$(CONFIG) scripts/stack.sh up

down:
	scripts/stack.sh down

run:
	CONFIG=$(CONFIG) scripts/stack.sh run

status:
	scripts/stack.sh status

test:
	scripts/test.sh

bench:
	scripts/bench.sh $(ARGS)

# Analytics endpoints and model training on ~1M simulated interactions (several minutes).
bench-scale:
	scripts/bench-scale.sh

chaos:
	scripts/chaos.sh

# Three RabbitMQ nodes, a PostgreSQL primary and a replica, the five services pointed at them (.run/cluster).
cluster-up:
	STACK=cluster CLUSTER=1 CONFIG=$(CONFIG) scripts/stack.sh up

cluster-down:
	STACK=cluster CLUSTER=1 scripts/stack.sh down

clean:
	scripts/stack.sh down || true
	rm -rf .run .build
