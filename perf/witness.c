/* The soak's native witness: a JACK client in C, connected to nothing, whose process callback
 * copies a block out of a ring and counts late cycles exactly as vqsynth's CycleWatch does
 * (vqsynth/engine/backends.py). Beside the Python witness it tells what any client on this
 * machine suffers (the driver's and the CPU's late cycles) from what Python adds (the GIL,
 * the interpreter). Built by perf/soak.py with the system's cc; needs libjack only, no headers.
 *
 *     witness SERVER SECONDS   ->  prints "periods late waited"
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint32_t jack_nframes_t;
typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;
typedef int (*JackProcessCallback)(jack_nframes_t nframes, void *arg);

extern jack_client_t *jack_client_open(const char *name, int options, int *status, ...);
extern jack_port_t *jack_port_register(jack_client_t *, const char *, const char *, unsigned long, unsigned long);
extern int jack_set_process_callback(jack_client_t *, JackProcessCallback, void *);
extern int jack_activate(jack_client_t *);
extern int jack_deactivate(jack_client_t *);
extern int jack_client_close(jack_client_t *);
extern void *jack_port_get_buffer(jack_port_t *, jack_nframes_t);
extern jack_nframes_t jack_last_frame_time(const jack_client_t *);
extern jack_nframes_t jack_frames_since_cycle_start(const jack_client_t *);

enum { JackNoStartServer = 0x01, JackServerName = 0x04, JackPortIsOutput = 0x2 };

static jack_client_t *client;
static jack_port_t *port;
static float ring[48000];
static volatile uint64_t periods, late, waited;
static int have_last;
static jack_nframes_t last_cycle;

static int process(jack_nframes_t frames, void *arg) {
    (void)arg;
    jack_nframes_t cycle = jack_last_frame_time(client), entered = jack_frames_since_cycle_start(client);
    size_t i = (size_t)((periods * frames) % (sizeof ring / sizeof *ring - frames));
    memcpy(jack_port_get_buffer(port, frames), ring + i, frames * sizeof(float));
    periods++;
    int skipped = have_last && (jack_nframes_t)(cycle - last_cycle) > frames;
    have_last = 1;
    last_cycle = cycle;
    int is_late = skipped || jack_last_frame_time(client) != cycle || jack_frames_since_cycle_start(client) > frames;
    if (is_late) {
        late++;
        if (skipped || entered > frames / 2)
            waited++;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: witness SERVER SECONDS\n");
        return 2;
    }
    int status = 0;
    client = jack_client_open("witness_c", JackNoStartServer | JackServerName, &status, argv[1]);
    if (!client) {
        fprintf(stderr, "witness: cannot open a client on JACK server '%s' (status %#x)\n", argv[1], status);
        return 1;
    }
    port = jack_port_register(client, "out", "32 bit float mono audio", JackPortIsOutput, 0);
    jack_set_process_callback(client, process, NULL);
    if (!port || jack_activate(client)) {
        fprintf(stderr, "witness: cannot activate\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    usleep((useconds_t)(atof(argv[2]) * 1e6));
    jack_deactivate(client);
    jack_client_close(client);
    printf("%llu %llu %llu\n", (unsigned long long)periods, (unsigned long long)late, (unsigned long long)waited);
    return 0;
}
