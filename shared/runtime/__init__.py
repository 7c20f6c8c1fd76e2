"""The stage runtime: what every service process is made of besides its own work.

- ``consumer``: the one adapter that owns aiokafka's consume and commit loop;
- ``delivery``: the delivery policy every consume mode applies (parse, handle,
  dead letter for what can never succeed, back-off for what may);
- the consume modes, one small class each: ``batches`` (a stage's own topic, VINs
  overlapped), ``table`` (a table every instance reads whole), ``feed`` (parsed
  batches to one handler), ``fold`` (messages held between two writes);
- ``emitter``: what a stage publishes, with the envelope conventions;
- ``health``: each subscription's movement and /healthz;
- ``process``: the process's name, port and garbage collector;
- ``partitions``: which partitions of a group's topic the process holds, and where a key falls.

``shared.stage.Stage`` assembles them. FastStream keeps the declarations of the
topics each stage reads and writes, which give the AsyncAPI document.
"""
