# Lead pipeline. `make run` and `make test` set everything up on a fresh Debian machine (as root).
.PHONY: build up down run test bench chaos status clean

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
	scripts/bench.sh

chaos:
	scripts/chaos.sh

clean:
	scripts/stack.sh down || true
	rm -rf .run .build
