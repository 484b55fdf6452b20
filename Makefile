# spo — Step-aware Preference Optimization as small Unix tools.
# make            build build/rel/libspo.a and bin/spo-* (CUDA when nvcc is found)
# make CUDA=0     force the CPU-only build
# make test       install missing Debian packages, build, run every test
# make SANITIZE=1 test   the same under ASan + UBSan (objects in build/san)
# make install PREFIX=/usr/local

PREFIX   ?= /usr/local
CC       ?= cc
NVCC     ?= nvcc
SANITIZE ?= 0
CUDA     ?= auto
NATIVE   ?= 1
# GPU architectures the kernels are built for (80 = A100, 90 = H100/H200)
CUDA_ARCHS ?= 80 90
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

PKGS     := hdf5-serial libarchive libpng libcjson openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ifeq ($(SANITIZE),1)
  B       := build/san
  BINDIR  := build/san/bin
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT     := -O1 -g
else
  B       := build/rel
  BINDIR  := bin
  SANFLAGS :=
  OPT     := -O2 -g
endif

ifeq ($(CUDA),auto)
  HAVE_NVCC := $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1 || echo 0)
else
  HAVE_NVCC := $(CUDA)
endif
# the sanitizers and nvcc objects do not mix well; the sanitized build is CPU-only
ifeq ($(SANITIZE),1)
  HAVE_NVCC := 0
endif

# MPI: spo-step-update is data parallel under mpirun when mpicc is found, as
# CUDA is built when nvcc is (MPI=0 forces it off); only that tool links MPI.
# The sanitized build leaves it out (Open MPI's allocations trip LeakSanitizer).
MPICC    ?= mpicc
MPI      ?= auto
ifeq ($(MPI),auto)
  HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 1 || echo 0)
else
  HAVE_MPI := $(MPI)
endif
ifeq ($(SANITIZE),1)
  HAVE_MPI := 0
endif
ifeq ($(HAVE_MPI),1)
  MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null) -DSPO_HAVE_MPI
  MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
  MPI_SAY    := MPI: spo-step-update built with $(MPICC) (mpirun -np R splits each step)
else
  MPI_SAY    := MPI: skipped ($(if $(filter 0,$(MPI)),MPI=0,mpicc not found)); spo-step-update runs as one process
endif

CFLAGS   ?= $(OPT)
CFLAGS   += -std=c11 -Itools -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -pthread -MMD -MP $(SANFLAGS) \
            -Ilib $(PKG_CFLAGS) -DSPO_VERSION='"$(VERSION)"'
LDFLAGS  += $(SANFLAGS) -pthread
# the CPU kernels (lib/ops/cpu/*.c) get -O3 and vectorisation-friendly flags but
# no -ffast-math: NaN, infinities and the causal mask must stay exact.
# NATIVE=1 (default) tunes them to this CPU (-march=native); NATIVE=0 for a
# library that runs on any x86-64 (or other) CPU.
KFLAGS   := -fno-math-errno -fno-trapping-math -ffp-contract=fast
ifeq ($(NATIVE),1)
  KFLAGS += -march=native
endif
ifneq ($(SANITIZE),1)
  KFLAGS += -O3
endif
LDLIBS   := $(PKG_LIBS) -lm

LIB_SRC  := $(wildcard lib/*/*.c lib/*/*/*.c)
CU_SRC   := $(wildcard kernels/*.cu)
TOOL_SRC := $(wildcard tools/spo-*.c)
TEST_SRC := $(wildcard tests/unit/test_*.c)
HELP_SRC := $(wildcard tests/helpers/*.c)

ifeq ($(HAVE_NVCC),1)
  CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
  CFLAGS  += -DSPO_HAVE_CUDA -I$(CUDA_HOME)/include
  # warnings are errors for the kernels: nvcc's own and the host compiler's
  NVWARN  := -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror
  NVFLAGS := -O2 -std=c++17 -Ilib -DSPO_HAVE_CUDA $(NVWARN) -Xcompiler -fPIC $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) -MMD -MP
  LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
  CU_OBJ  := $(CU_SRC:kernels/%.cu=$(B)/kernels/%.o)
  CUDA_SAY := CUDA: building $(words $(CU_SRC)) kernel file(s) with $(NVCC)
else
  CU_OBJ  :=
  CUDA_SAY := CUDA: skipped ($(if $(filter 0,$(CUDA)),CUDA=0,nvcc not found)); CPU-only build
endif

LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/schemas.o
LIBSPO   := $(B)/libspo.a
TOOLS    := $(TOOL_SRC:tools/%.c=$(BINDIR)/%)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(B)/tests/%) $(HELP_SRC:tests/helpers/%.c=$(B)/tests/helpers/%)

# keep intermediate objects, so an unchanged tree relinks nothing
.SECONDARY:

.PHONY: all lib tools tests test check-deps demo install clean fuzz bench say-cuda
all: say-cuda tools

say-cuda:
	@echo "$(CUDA_SAY)"
	@echo "$(MPI_SAY)"

lib: $(LIBSPO)
tools: $(TOOLS)
tests: $(TESTS)

$(LIBSPO): $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/lib/ops/cpu/%.o: lib/ops/cpu/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KFLAGS) -c $< -o $@

$(B)/kernels/%.o: kernels/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# schemas/*.json are compiled into the library so installed tools need no data path
$(B)/gen/schemas.c: $(wildcard schemas/*.json) scripts/embed-schemas.sh
	@mkdir -p $(@D)
	sh scripts/embed-schemas.sh schemas/*.json > $@

$(B)/gen/schemas.o: $(B)/gen/schemas.c
	$(CC) $(CFLAGS) -c $< -o $@

# each tool's command line is described in tools/<tool>.opts; scripts/optgen.awk
# writes the C of it (option table, struct of values, spo_tool) that the tool includes
$(B)/gen/tools/%.opts.h: tools/%.opts scripts/optgen.awk
	@mkdir -p $(@D)
	awk -f scripts/optgen.awk $< > $@.tmp && mv $@.tmp $@

$(TOOL_SRC:tools/%.c=$(B)/tools/%.o): $(B)/tools/%.o: tools/%.c $(B)/gen/tools/%.opts.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -I$(B)/gen/tools -c $< -o $@

# --config NAME finds the recipes of the tree it was built from, in any build folder
$(B)/tools/frame.o: CFLAGS += -DSPO_RECIPES_DIR='"$(CURDIR)/pipelines/recipes"'

# tools/frame.c is the shared tool frame (options, usage, errors, exit); only tools exit
$(BINDIR)/%: $(B)/tools/%.o $(B)/tools/frame.o $(LIBSPO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(B)/tools/frame.o $(LIBSPO) $(LDLIBS) -o $@

# the MPI build of spo-step-update (see MPI above)
$(B)/tools/spo-step-update.o: CFLAGS += $(MPI_CFLAGS)
$(BINDIR)/spo-step-update: LDLIBS += $(MPI_LIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(LIBSPO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBSPO) $(LDLIBS) -lcmocka -o $@

$(B)/tests/helpers/%: $(B)/tests/helpers/%.o $(LIBSPO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBSPO) $(LDLIBS) -o $@

check-deps:
	@sh scripts/deps.sh

test: check-deps
	$(MAKE) all tests
	sh tests/run.sh "$(BINDIR)" "$(B)"

# benchmarks (tests/bench/*.c): build/<rel|san>/bench/NAME, not part of `tests`
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCHES  := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)
bench: $(BENCHES)

$(B)/bench/%: $(B)/tests/bench/%.o $(LIBSPO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIBSPO) $(LDLIBS) -o $@

fuzz:
	sh tests/fuzz/run.sh 20

demo: check-deps
	$(MAKE) all
	sh pipelines/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	for f in pipelines/spo-*; do [ -f "$$f" ] && install -m 755 "$$f" $(DESTDIR)$(PREFIX)/bin/ || true; done
	install -d $(DESTDIR)$(PREFIX)/share/spo/recipes
	install -m 644 pipelines/recipes/*.conf $(DESTDIR)$(PREFIX)/share/spo/recipes/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/*.5) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
