/*
 * sim_plant.h - the host build's simulated plant: a 1-D point mass of 1 kg driven by a force.
 *
 * State: position x (m) and velocity v (m/s); observation [x, v] as float32; action: the force u (N).
 * One step of dt seconds under the held force, semi-implicit Euler in double precision:
 *     v += u * dt;  x += v * dt
 * Terminal state: |x| >= end_stop (the end stops of the rail); the physics goes on regardless.
 */
#ifndef SIM_PLANT_H
#define SIM_PLANT_H

typedef struct sim_plant {
    double x;
    double v;
    double u;        /* the force last written (the safe state writes 0) */
    double dt;       /* seconds per step: the control period */
    double end_stop; /* |x| at which the plant is terminal */
    unsigned long steps;
} sim_plant;

void sim_plant_init(sim_plant *p, double dt, double end_stop);
void sim_plant_reset(sim_plant *p);
void sim_plant_step(sim_plant *p);
int sim_plant_terminated(const sim_plant *p);

#endif /* SIM_PLANT_H */
