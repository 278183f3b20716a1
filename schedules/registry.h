/*
** registry.h: every schedule trainsim knows, one line each.
**
** Adding a schedule: write schedules/NAME.c defining
**   const ts_schedule_t ts_schedule_NAME = { .name = "...", ... };
** and add its line here.  CMake picks up the file by itself.
*/
TS_SCHEDULE(ts_schedule_gpipe)
TS_SCHEDULE(ts_schedule_1f1b)
TS_SCHEDULE(ts_schedule_interleaved)
TS_SCHEDULE(ts_schedule_zb_h1)
TS_SCHEDULE(ts_schedule_varuna)
TS_SCHEDULE(ts_schedule_chimera)
TS_SCHEDULE(ts_schedule_2bw)
TS_SCHEDULE(ts_schedule_mobius)
TS_SCHEDULE(ts_schedule_gpipe_swap)
TS_SCHEDULE(ts_schedule_gshard)
TS_SCHEDULE(ts_schedule_gshard_gpipe)
TS_SCHEDULE(ts_schedule_table)
