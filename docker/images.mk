# Container targets; included from the Makefile (`include docker/images.mk`). Needs PYTEST from there.
.PHONY: docker-engine images test-docker docker-clean

docker-engine:    ## install docker.io (+ docker-compose, debootstrap) and start dockerd if no engine answers
	@bash scripts/docker-engine.sh

images: setup docker-engine   ## build every image with no registry (debootstrap base, go-built toxiproxy, wheelhouse)
	@bash scripts/build-images.sh

docker-clean:     ## remove containers/networks/volumes labelled walletchaos=1
	@bash scripts/docker-clean.sh

test-docker: setup images docker-clean   ## the container tests (compose stack, docker backend)
	$(PYTEST) -q -m docker
