/* sim_plant.c - the host build's point mass. See sim_plant.h. */
#include "sim_plant.h"

void sim_plant_init(sim_plant *p, double dt, double end_stop)
{
    p->dt = dt;
    p->end_stop = end_stop;
    sim_plant_reset(p);
}

void sim_plant_reset(sim_plant *p)
{
    p->x = 0.0;
    p->v = 0.0;
    p->u = 0.0;
    p->steps = 0;
}

void sim_plant_step(sim_plant *p)
{
    p->v += p->u * p->dt;
    p->x += p->v * p->dt;
    p->steps++;
}

int sim_plant_terminated(const sim_plant *p)
{
    return p->x >= p->end_stop || p->x <= -p->end_stop;
}
