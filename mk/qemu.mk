# mk/qemu.mk — prepage inside QEMU 7.2's post-copy (integrations/qemu/README.md).
#
#   make qemu          fetch Debian's QEMU 7.2 source, apply integrations/qemu/patches,
#                      build build/qemu/bin/qemu-system-x86_64 (x86_64, TCG) with libprepage
#   make qemu-guest    the guest: Debian's kernel + a busybox initramfs with the workloads
#   make qemu-results  every guest load x QEMU_CONFIGS, QEMU_ROUNDS rounds, interleaved:
#                      docs/results/qemu.{md,csv,svg}
#   make test-qemu     one post-copy migration (FSD load) through the oracle (dp-plus), data verified
#   make qemu-check    CI-sized: the patches apply to the fetched source and the patched
#                      files compile (no full build, no guest)
#
# QEMU_CONFIGS takes any list: stock, forward:W, dp, dp-plus, dp-literal, readahead, none.
QEMU_CONFIGS ?= stock,forward:16,forward:64,dp,dp-plus
QEMU_LOADS   ?= fsd,stream,mixed,smp4
QEMU_ROUNDS  ?= 3
QEMU_ARGS    ?=
QEMU_BIN     := build/qemu/bin/qemu-system-x86_64
QEMU_GUEST   := build/qemu/guest/initramfs.cpio.gz

.PHONY: qemu qemu-guest qemu-results test-qemu qemu-check qemu-prepaged

qemu: lib
	bash integrations/qemu/build-qemu.sh

qemu-guest:
	bash integrations/qemu/guest/build-guest.sh

qemu-prepaged: deps
	$(RELEASE) --product prepaged

qemu-results: qemu qemu-guest qemu-prepaged
	python3 integrations/qemu/pcqemu.py results --configs $(QEMU_CONFIGS) --loads $(QEMU_LOADS) \
	  --rounds $(QEMU_ROUNDS) --out docs/results/qemu $(QEMU_ARGS)

test-qemu: qemu qemu-guest qemu-prepaged
	python3 integrations/qemu/pcqemu.py check --config dp-plus $(QEMU_ARGS)

qemu-check: lib
	bash integrations/qemu/build-qemu.sh --check
