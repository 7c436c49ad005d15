/*
 * sim-wrap.h -- for tests: a sim source with some calls of the test's own.
 * sim_wrap_ops() fills ops with the sim's describe, map, unmap, log-dirty,
 * pause, resume, static_state and save_state, and nothing else; the test
 * replaces what it tests and puts the ops on a sim source (b->ops), whose
 * calls take that handle as it is.
 */
#ifndef XMIG_SIM_WRAP_H
#define XMIG_SIM_WRAP_H

#include <string.h>

#include "backend.h"

static void
sim_wrap_ops(struct backend_ops *o, const char *name)
{
	memset(o, 0, sizeof(*o));
	o->name = name;
	o->describe = sim_ops.describe;
	o->map = sim_ops.map;
	o->unmap = sim_ops.unmap;
	o->enable_dirty = sim_ops.enable_dirty;
	o->read_dirty = sim_ops.read_dirty;
	o->disable_dirty = sim_ops.disable_dirty;
	o->pause = sim_ops.pause;
	o->resume = sim_ops.resume;
	o->static_state = sim_ops.static_state;
	o->save_state = sim_ops.save_state;
}

#endif
