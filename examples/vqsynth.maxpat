{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 5,
   "revision": 0
  },
  "rect": [
   100,
   100,
   1000,
   620
  ],
  "boxes": [
   {
    "box": {
     "id": "obj-1",
     "maxclass": "newobj",
     "text": "udpsend 127.0.0.1 9000",
     "patching_rect": [
      20,
      560,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-2",
     "maxclass": "comment",
     "text": "vqsynth from Max: notes from MIDI in, attribute sliders, presets, level and voices pushed back to udpreceive 9001",
     "patching_rect": [
      20,
      10,
      600,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-3",
     "maxclass": "newobj",
     "text": "notein",
     "patching_rect": [
      20,
      50,
      80,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-4",
     "maxclass": "newobj",
     "text": "pack 0 0",
     "patching_rect": [
      20,
      80,
      80,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-5",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/note/on",
     "patching_rect": [
      20,
      110,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-6",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      200,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-7",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/volume",
     "patching_rect": [
      200,
      200,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-8",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      260,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-9",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/brightness",
     "patching_rect": [
      260,
      230,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-10",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      320,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-11",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/hardness",
     "patching_rect": [
      320,
      200,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-12",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      380,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-13",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/depth",
     "patching_rect": [
      380,
      230,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-14",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      440,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-15",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/roughness",
     "patching_rect": [
      440,
      200,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-16",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      500,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-17",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/boominess",
     "patching_rect": [
      500,
      230,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-18",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      560,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-19",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/warmth",
     "patching_rect": [
      560,
      200,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-20",
     "maxclass": "slider",
     "text": "",
     "patching_rect": [
      620,
      50,
      20,
      140
     ],
     "floatoutput": 1,
     "size": 1.0,
     "min": 0.0,
     "orientation": 2
    }
   },
   {
    "box": {
     "id": "obj-21",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/attr/sharpness",
     "patching_rect": [
      620,
      230,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-22",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/preset",
     "patching_rect": [
      20,
      300,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-23",
     "maxclass": "message",
     "text": "0",
     "patching_rect": [
      20,
      270,
      30,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-24",
     "maxclass": "message",
     "text": "1",
     "patching_rect": [
      60,
      270,
      30,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-25",
     "maxclass": "message",
     "text": "2",
     "patching_rect": [
      100,
      270,
      30,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-26",
     "maxclass": "message",
     "text": "3",
     "patching_rect": [
      140,
      270,
      30,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-27",
     "maxclass": "newobj",
     "text": "loadbang",
     "patching_rect": [
      700,
      50,
      70,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-28",
     "maxclass": "message",
     "text": "/vqsynth/notify 1 10 9001",
     "patching_rect": [
      700,
      80,
      200,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-29",
     "maxclass": "message",
     "text": "/vqsynth/panic",
     "patching_rect": [
      700,
      110,
      120,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-30",
     "maxclass": "newobj",
     "text": "prepend /vqsynth/drums/hit",
     "patching_rect": [
      700,
      170,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-31",
     "maxclass": "message",
     "text": "36 110",
     "patching_rect": [
      700,
      140,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-32",
     "maxclass": "message",
     "text": "38 110",
     "patching_rect": [
      755,
      140,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-33",
     "maxclass": "message",
     "text": "42 110",
     "patching_rect": [
      810,
      140,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-34",
     "maxclass": "message",
     "text": "46 110",
     "patching_rect": [
      865,
      140,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-35",
     "maxclass": "message",
     "text": "49 110",
     "patching_rect": [
      920,
      140,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-36",
     "maxclass": "message",
     "text": "51 110",
     "patching_rect": [
      975,
      140,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-37",
     "maxclass": "comment",
     "text": "drums: kick snare closed-hat / open-hat crash ride",
     "patching_rect": [
      700,
      200,
      300,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-38",
     "maxclass": "newobj",
     "text": "udpreceive 9001",
     "patching_rect": [
      20,
      400,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-39",
     "maxclass": "newobj",
     "text": "route /vqsynth/level",
     "patching_rect": [
      20,
      430,
      150,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-40",
     "maxclass": "newobj",
     "text": "unpack 0. 0",
     "patching_rect": [
      20,
      460,
      80,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-41",
     "maxclass": "flonum",
     "text": "",
     "patching_rect": [
      20,
      490,
      60,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-42",
     "maxclass": "number",
     "text": "",
     "patching_rect": [
      90,
      490,
      50,
      22
     ]
    }
   },
   {
    "box": {
     "id": "obj-43",
     "maxclass": "comment",
     "text": "level dB, voices",
     "patching_rect": [
      150,
      490,
      150,
      22
     ]
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "source": [
      "obj-3",
      0
     ],
     "destination": [
      "obj-4",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-3",
      1
     ],
     "destination": [
      "obj-4",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-4",
      0
     ],
     "destination": [
      "obj-5",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-5",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-6",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-7",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-8",
      0
     ],
     "destination": [
      "obj-9",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-9",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-10",
      0
     ],
     "destination": [
      "obj-11",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-11",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-12",
      0
     ],
     "destination": [
      "obj-13",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-13",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-14",
      0
     ],
     "destination": [
      "obj-15",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-15",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-16",
      0
     ],
     "destination": [
      "obj-17",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-17",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-18",
      0
     ],
     "destination": [
      "obj-19",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-19",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-20",
      0
     ],
     "destination": [
      "obj-21",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-21",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-23",
      0
     ],
     "destination": [
      "obj-22",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-24",
      0
     ],
     "destination": [
      "obj-22",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-25",
      0
     ],
     "destination": [
      "obj-22",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-26",
      0
     ],
     "destination": [
      "obj-22",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-22",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-27",
      0
     ],
     "destination": [
      "obj-28",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-28",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-29",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-31",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-32",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-33",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-34",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-35",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-36",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-30",
      0
     ],
     "destination": [
      "obj-1",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-38",
      0
     ],
     "destination": [
      "obj-39",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-39",
      0
     ],
     "destination": [
      "obj-40",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-40",
      0
     ],
     "destination": [
      "obj-41",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-40",
      1
     ],
     "destination": [
      "obj-42",
      0
     ]
    }
   }
  ]
 }
}
